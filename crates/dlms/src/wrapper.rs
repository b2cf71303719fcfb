//! The TCP wrapper (IEC 62056-47): an 8-byte header carrying version, ports and length.
