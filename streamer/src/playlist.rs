//! The HLS playlist the streamer serves, kept by RFC 8216's rules across pipeline and process restarts.
