//! Pure domain logic: no I/O, deterministic given its inputs (time is passed in).

pub mod api_key;
pub mod hashing;
pub mod hours;
pub mod phone;
pub mod restaurant;
pub mod token;
pub mod validate;
