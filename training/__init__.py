"""Training scripts for the reference models; each runs locally, on EC2 and as a SageMaker job."""
