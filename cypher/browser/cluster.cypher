// One match cluster by its id (`facegraph clusters` prints them): its faces with the images and
// subjects behind them, and every SIMILAR edge between two of its faces whatever its verdict, so
// that Neo4j Browser draws the cluster (each edge carries its verdict, score and reason_codes).
// Parameters: $cluster_id (`cl-` and 16 hex digits).
// In Neo4j Browser: :param cluster_id => 'cl-0123456789abcdef'
MATCH (f:Face {cluster_id: $cluster_id})
OPTIONAL MATCH (f)-[in_image:IN_IMAGE]->(i:Image)
OPTIONAL MATCH (i)-[of_subject:OF_SUBJECT]->(s:Subject)
OPTIONAL MATCH (f)-[e:SIMILAR]->(g:Face {cluster_id: $cluster_id})
RETURN f.face_id AS face_id, s.subject_id AS subject_id, f AS face, in_image, i AS image,
       of_subject, s AS subject, collect(e) AS similar,
       [x IN collect(e) | {to: endNode(x).face_id, verdict: x.verdict, score: x.score,
                           reason_codes: x.reason_codes}] AS edges
ORDER BY face_id;
