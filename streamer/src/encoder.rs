//! H.264 encoders: the order auto tries them in, their settings from the config, and proof that one really runs.
