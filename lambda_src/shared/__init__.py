"""Code shared by the course's Lambda functions (copied into each deployment package)."""
