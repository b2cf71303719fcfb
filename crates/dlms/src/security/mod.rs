//! DLMS security: suite 0 ciphering (AES-GCM-128), HLS authentication, key wrap, invocation counters.
