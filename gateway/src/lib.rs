//! Anxin gateway.
