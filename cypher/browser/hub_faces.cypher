// Hub faces: faces whose SIMILAR edges at or above a similarity reach many distinct subjects (a
// poster, a stock photo, a low-quality or generic face); their matches deserve a second look.
// Parameters: $min_similarity, $min_subjects (how many distinct subjects make a hub), $limit.
// In Neo4j Browser: :param min_similarity => 80.0
//                   :param min_subjects => 3
//                   :param limit => 25
MATCH (f:Face)-[e:SIMILAR]-(g:Face)-[:IN_IMAGE]->(:Image)-[:OF_SUBJECT]->(s:Subject)
WHERE e.similarity >= $min_similarity
WITH f, count(DISTINCT s) AS subjects, count(DISTINCT g) AS neighbours
WHERE subjects >= $min_subjects
RETURN f.face_id AS face_id, subjects, neighbours
ORDER BY subjects DESC, neighbours DESC, face_id
LIMIT $limit;
