// A face's neighbourhood to depth 2: every face reachable over at most two SIMILAR edges, with the
// number of hops and the subject behind it, and the faces and SIMILAR relationships on the way, so
// that Neo4j Browser draws the neighbourhood (each edge carries its verdict, score and
// reason_codes).
// Parameters: $face_id (the face to start from).
// In Neo4j Browser: :param face_id => 'aaaaaaaa-0000-4000-8000-000000000001'
MATCH p = (f:Face {face_id: $face_id})-[:SIMILAR*1..2]-(g:Face)
WHERE g.face_id <> $face_id
OPTIONAL MATCH (g)-[:IN_IMAGE]->(:Image)-[:OF_SUBJECT]->(s:Subject)
WITH g, s, min(length(p)) AS hops, collect(p) AS paths
RETURN g.face_id AS face_id, hops, s.subject_id AS subject_id, g AS face, paths
ORDER BY hops, face_id;
