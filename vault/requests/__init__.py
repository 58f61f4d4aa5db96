"""Citizens' rights requests (GDPR Arts. 15-21) as a tracked workflow with a legal deadline."""
