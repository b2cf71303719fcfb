//! HDLC link layer (IEC 62056-46): frame format type 3, addressing, the link state machine.
