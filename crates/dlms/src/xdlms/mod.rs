//! xDLMS APDUs (IEC 62056-5-3): initiate, GET/SET/ACTION, block transfer, notifications, errors.
