//! The voice platforms we talk to, as pure code: how they sign requests, the
//! shapes of what they send and what they expect back.
//!
//! Kept apart from our own API types because these formats are theirs: every
//! parser here is lenient (unknown fields ignored, optional fields optional)
//! so a platform adding a field never breaks a call, and every signature
//! check matches the platform's own SDK, with vectors from that SDK in tests.

pub mod elevenlabs;
pub mod retell;
pub mod twilio;
pub mod vapi;
