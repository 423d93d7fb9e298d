"""Launchers: SageMaker training and tuning jobs, data upload, and the EC2 (spot) runner.

Run as ``python -m training.launch <train|tune|upload-data|ec2> ...`` from the project root. Not
part of the SageMaker ``source_dir`` bundle: the job containers never import it.
"""
