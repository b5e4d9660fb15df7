// The decision history of a pair of faces: every analyst decision (same or different person, who,
// when, the note) and every verdict the rules gave the pair's SIMILAR edge (the verdict, the rule set
// version, the reasons as JSON), oldest first. Nothing in it is ever overwritten.
// Parameters: $face_a, $face_b (face ids, in either order).
// In Neo4j Browser: :param face_a => 'aaaaaaaa-0000-4000-8000-000000000004'
//                   :param face_b => 'aaaaaaaa-0000-4000-8000-000000000005'
CALL {
  MATCH (a:Face)-[d:SAME_PERSON|DIFFERENT_PERSON]->(b:Face)
  WHERE (a.face_id = $face_a AND b.face_id = $face_b) OR (a.face_id = $face_b AND b.face_id = $face_a)
  RETURN d.at AS at, d.seq AS seq, 'decision' AS kind, type(d) AS outcome, d.analyst AS by,
         d.note AS detail
  UNION ALL
  MATCH (j:Judgement)
  WHERE (j.face_a = $face_a AND j.face_b = $face_b) OR (j.face_a = $face_b AND j.face_b = $face_a)
  RETURN j.at AS at, j.seq AS seq, 'verdict' AS kind, j.verdict AS outcome, j.rule_set AS by,
         j.reasons AS detail
}
RETURN at, kind, outcome, by, detail
ORDER BY at, kind, seq;
