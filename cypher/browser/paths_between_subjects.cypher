// The paths between two subjects (customers): chains of SIMILAR edges, at most four long, from a
// face of one subject to a face of the other, shortest first, with the similarity and verdict of
// every edge on the way, and the path itself, which Neo4j Browser draws (each edge carries its
// verdict, score and reason_codes). An empty result means the graph does not join them.
// Parameters: $subject_a, $subject_b (subject ids).
// In Neo4j Browser: :param subject_a => 'C001'
//                   :param subject_b => 'C003'
MATCH (:Subject {subject_id: $subject_a})<-[:OF_SUBJECT]-(:Image)<-[:IN_IMAGE]-(fa:Face)
MATCH (:Subject {subject_id: $subject_b})<-[:OF_SUBJECT]-(:Image)<-[:IN_IMAGE]-(fb:Face)
MATCH p = (fa)-[:SIMILAR*1..4]-(fb)
RETURN p,
       [n IN nodes(p) | n.face_id] AS faces,
       [r IN relationships(p) | r.similarity] AS similarities,
       [r IN relationships(p) | r.verdict] AS verdicts,
       length(p) AS hops
ORDER BY hops
LIMIT 25;
