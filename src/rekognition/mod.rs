//! Saved Rekognition responses: wire types and their conversion into the domain model.
