//! Combinators: deadlines (and, with the combinators issue, retry, backoff, timeout and the
//! `Policy` pipeline).

pub mod deadline;
