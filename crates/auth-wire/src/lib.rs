//! JSON and XML envelopes and request decoding of the portal authentication API (filled by the wire issue).
