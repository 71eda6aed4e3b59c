//! The SQLite store of camera heartbeats: raw heartbeats, state changes, hourly roll-ups,
//! and uptime computed from the time spent in each state.
