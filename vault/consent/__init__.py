"""Citizens' consents: versioned, withdrawable with one call, each version with a signed receipt."""
