//! tokio drivers for the sans-I/O `dlms` state machines.
