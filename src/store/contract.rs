//! The contract suite every GraphStore adapter passes.
