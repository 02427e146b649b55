"""The only modules that talk to AWS: DynamoDB tables and the S3 bucket."""
