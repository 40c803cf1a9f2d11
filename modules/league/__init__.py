"""Championships: a league file, sessions attached to rounds, stewards' decisions, standings."""
