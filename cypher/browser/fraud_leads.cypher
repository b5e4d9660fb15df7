// Fraud leads: match clusters whose faces belong to two or more customers (subjects), the clusters
// with the most subjects first. A cluster is what `facegraph clusters` last computed (confirmed
// matches and analysts' same-person decisions, split where a different-person decision holds).
// Parameters: $min_subjects (2 for fraud leads), $limit (how many clusters).
// In Neo4j Browser: :param min_subjects => 2
//                   :param limit => 25
MATCH (f:Face)
WHERE f.cluster_id IS NOT NULL
OPTIONAL MATCH (f)-[:IN_IMAGE]->(:Image)-[:OF_SUBJECT]->(s:Subject)
WITH f.cluster_id AS cluster_id, collect(DISTINCT f.face_id) AS faces,
     collect(DISTINCT s.subject_id) AS subjects
WHERE size(subjects) >= $min_subjects
RETURN cluster_id, size(subjects) AS subject_count, subjects, size(faces) AS face_count, faces
ORDER BY subject_count DESC, face_count DESC, cluster_id
LIMIT $limit;
