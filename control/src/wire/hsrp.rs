//! HSRP v1, v2 and HSRP for IPv6 packets.
