"""Code shared by the course's Lambda functions (copied into each deployment package).

- ``aws``           one cached boto3 client per service, one backoff
- ``settings``      one reader of a function's settings (environment variables)
- ``api``           API Gateway proxy events in, JSON responses out, one error type
- ``kinesis_batch`` a Kinesis event's records read, the partial-batch response
- ``kinesis_put``   rows packed into Kinesis records, PutRecords with retries
- ``rows``          the field list; checking a row from outside, or read back from the stream
- ``invoice_items`` the DynamoDB data model of invoices and customers
- ``bulk_files``    CSV / JSON Lines files read chunk by chunk (batch_loader)
- ``warehouse_merge`` a staged chunk merged into the warehouse with the Data API (batch_loader)
- ``invoice_reads`` the invoice tables read back: paged Query, stored JSON (invoice_api)
"""
