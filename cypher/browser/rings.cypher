// Rings: one person behind many customer accounts, as the rules found them (edges with the `ring`
// reason: a face matching many subjects whose neighbours also match each other and agree on gender
// and age), grouped by match cluster, the rings with the most subjects first, with their faces and
// ring edges for Neo4j Browser to draw.
// Parameters: $min_subjects (how many distinct subjects make a ring worth listing), $limit.
// In Neo4j Browser: :param min_subjects => 3
//                   :param limit => 25
MATCH (a:Face)-[e:SIMILAR]->(b:Face)
WHERE 'ring' IN coalesce(e.reason_codes, []) AND a.cluster_id IS NOT NULL
WITH a.cluster_id AS cluster_id, collect(e) AS ring_edges,
     collect(DISTINCT a) + collect(DISTINCT b) AS ends
UNWIND ends AS f
WITH cluster_id, ring_edges, collect(DISTINCT f) AS faces
UNWIND faces AS f
OPTIONAL MATCH (f)-[:IN_IMAGE]->(:Image)-[:OF_SUBJECT]->(s:Subject)
WITH cluster_id, ring_edges, faces, collect(DISTINCT s.subject_id) AS subjects
WHERE size(subjects) >= $min_subjects
RETURN cluster_id, size(subjects) AS subject_count, subjects, size(faces) AS face_count, faces,
       ring_edges
ORDER BY subject_count DESC, face_count DESC, cluster_id
LIMIT $limit;
