//! Map-Server reliable transport (TCP 4342) framing.
