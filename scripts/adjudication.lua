-- wrk script for POST /v1/adjudications (stateless): the canonical case, 97.99% similar, a face
-- classified 96% male against one classified 100% female. The bearer key comes from the
-- environment (FACEGRAPH_LOAD_KEY), as scripts/load-test sets it.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("FACEGRAPH_LOAD_KEY") or "")
wrk.body = [[{"similarity": 97.99,
 "face_a": {"face_id": "aaaaaaaa-0000-4000-8000-000000000004", "gender": {"value": "Male", "confidence": 96.0}, "age_range": {"low": 30, "high": 40}, "quality": {"brightness": 81.3, "sharpness": 77.8}},
 "face_b": {"face_id": "aaaaaaaa-0000-4000-8000-000000000005", "gender": {"value": "Female", "confidence": 100.0}, "age_range": {"low": 30, "high": 38}, "quality": {"brightness": 69.5, "sharpness": 88.1}}}]]

-- Count answers other than 200, so that a run of 401s or 400s cannot pass for throughput.
local bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("non-200 answers (this thread's count, see wrk's own Non-2xx line): %d\n", bad))
end
