package dev.thaw.cli;

import dev.thaw.store.Stores;
import picocli.CommandLine.Option;

/**
 * {@code --s3-endpoint}, {@code --s3-region}, {@code --s3-path-style}: where an {@code
 * s3://BUCKET/PREFIX} store is. Credentials never come from here: they come from the AWS
 * environment variables or the shared credentials file.
 */
final class S3Flags {
  @Option(
      names = "--s3-endpoint",
      paramLabel = "URL",
      description = {
        "S3 API endpoint, e.g. http://127.0.0.1:9000 (MinIO, Garage, Ceph RGW).",
        "Default: AWS, https://s3.REGION.amazonaws.com. Credentials: AWS_ACCESS_KEY_ID and "
            + "AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), or ~/.aws/credentials (AWS_PROFILE)."
      })
  String endpoint;

  @Option(
      names = "--s3-region",
      paramLabel = "REGION",
      description = "Signing region (default: $AWS_REGION, the profile's region, or us-east-1).")
  String region;

  @Option(
      names = "--s3-path-style",
      description =
          "Address buckets as ENDPOINT/BUCKET instead of BUCKET.ENDPOINT (always so for an IP address).")
  boolean pathStyle;

  Stores.S3Options toOptions() {
    return new Stores.S3Options(endpoint, region, pathStyle);
  }
}
