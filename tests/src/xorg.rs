//! placeholder: the X display harness
