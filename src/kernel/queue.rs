//! Placeholder: the future-event list is being written.
