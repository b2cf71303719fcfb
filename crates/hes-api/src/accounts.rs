//! The accounts port lives in the store (`hes_store::accounts`), where the API's durable state
//! belongs; this path stays for the code written against it.

pub use hes_store::accounts::*;
