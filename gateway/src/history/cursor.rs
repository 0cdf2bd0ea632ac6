//! Named positions of the history (`history_cursor`): `journal`, `next_id`, `sink`. The
//! table and its SQL belong to the store (`store/history.rs`).

pub(crate) use crate::store::{
    CURSOR_JOURNAL as JOURNAL, CURSOR_NEXT_ID as NEXT_ID, CURSOR_SINK as SINK,
};
