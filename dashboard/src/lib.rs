//! Anxin dashboard.
