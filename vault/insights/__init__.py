"""Privacy-preserving insights over the anonymous interaction statistics (issue 15; docs/insights.md)."""
