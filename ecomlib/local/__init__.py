"""The embedded local AWS: moto, plus what moto does not do, in one background process.

moto (https://docs.getmoto.org) implements the AWS APIs the course uses. Where it stops
short of AWS, this package fills the gap, and nothing outside this package does:

=====================  ===============================================================
``server``             starts, finds, resets and stops the process on 127.0.0.1;
                       serialises requests, because moto loses concurrent writes; holds
                       one object per gap-filler below and runs their lifecycle.
``component``          the lifecycle every gap-filler shares (start, stop, reset,
                       status, drain, control routes), as moto's backends do.
``patches``            every change to moto, each saying what AWS does (and where a
                       gap-filler takes over a moto call, e.g. Lambda Invoke).
``lambda_runtime``     runs deployed function code (moto stores it but needs Docker to
                       run it), one isolated worker process per execution environment;
                       ``lambda_worker`` is the program inside such a process.
``api_front``          serves each deployed API Gateway stage on its own 127.0.0.1 port
                       and calls Lambda proxy integrations (moto serves no stage).
``stream_pollers``     Kinesis event source mappings: polls shards, invokes functions
                       with batches, retries, bisects, dead-letters (moto ignores them).
``firehose``           delivery streams with a Kinesis source: reads the stream, buffers,
                       writes S3 objects and manifests, runs the Redshift COPY (moto
                       never reads the source and drops data bound for Redshift).
``redshift_data``      a DuckDB database per Redshift cluster behind the Redshift Data
                       API (moto answers canned rows); ``redshift_sql`` translates and
                       runs Redshift SQL, ``redshift_copy`` does COPY from S3.
``auth``               credentials of its own (0600) and every request's SigV4 signature
                       checked as AWS does (moto answers anyone).
``iam_enforcement``    gives functions their role's credentials and denies what their
                       role does not allow, by action, resource and condition, after
                       IAM's propagation delay (moto checks nothing).
``scheduler``          fires scheduled EventBridge rules on time and invokes their Lambda
                       targets; a clock that notebooks and tests can move (moto never fires).
=====================  ===============================================================

Everything a notebook does still goes through the ordinary AWS APIs with boto3: these
modules only make the local process behave the way AWS would behind those APIs.
"""
