// Downgraded high-similarity hits: pairs that the face search scored at or above a similarity but
// that the rules did not confirm (a gender or age contradiction, a hub face, poor quality, an
// analyst's decision...), with the verdict, the score after the rules and the reasons as JSON.
// Parameters: $min_similarity (the auto-confirm band starts at 98.5; 90 shows the review band too),
//             $limit.
// In Neo4j Browser: :param min_similarity => 90.0
//                   :param limit => 50
MATCH (a:Face)-[e:SIMILAR]->(b:Face)
WHERE e.similarity >= $min_similarity AND e.verdict IS NOT NULL AND e.verdict <> 'confirmed'
RETURN a.face_id AS face_a, b.face_id AS face_b, e.similarity AS similarity, e.verdict AS verdict,
       e.score AS score, e.reasons AS reasons, e.rule_set AS rule_set
ORDER BY similarity DESC, face_a, face_b
LIMIT $limit;
