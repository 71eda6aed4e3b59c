//! Which monitor to capture: RandR monitors, selection by index or output name, and change events.
