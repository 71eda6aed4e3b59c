//! The JSON documents the desktop-streamer programs exchange over HTTP, typed once and used
//! by the writer and every reader: a renamed field is a compile error, not a silent `null`.
