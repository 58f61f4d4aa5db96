"""Purpose-bound access grants: request, check the basis, read exactly the granted fields, revoke."""
