//! COSEM interface classes as typed views over attributes and methods (IEC 62056-6-2).
