//! ACSE association APDUs (AARQ/AARE, RLRQ/RLRE), BER-encoded (IEC 62056-5-3 / ISO 8650).
