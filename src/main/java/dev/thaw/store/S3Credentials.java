package dev.thaw.store;

import java.util.Map;
import java.util.Optional;
import software.amazon.awssdk.identity.spi.AwsCredentialsIdentity;
import software.amazon.awssdk.identity.spi.AwsSessionCredentialsIdentity;
import software.amazon.awssdk.profiles.Profile;
import software.amazon.awssdk.profiles.ProfileFile;

/**
 * Finds S3 credentials and region where AWS tools look for them: the environment ({@code
 * AWS_ACCESS_KEY_ID}, {@code AWS_SECRET_ACCESS_KEY}, {@code AWS_SESSION_TOKEN}, {@code
 * AWS_REGION}), then the shared credentials and config files ({@code ~/.aws/credentials}, {@code
 * ~/.aws/config}, or {@code AWS_SHARED_CREDENTIALS_FILE} / {@code AWS_CONFIG_FILE}) for the profile
 * {@code AWS_PROFILE} (default {@code default}). Never from the command line, and never shown in a
 * message.
 */
final class S3Credentials {
  private S3Credentials() {}

  static AwsCredentialsIdentity find(Map<String, String> env) {
    String id = env.get("AWS_ACCESS_KEY_ID");
    String secret = env.get("AWS_SECRET_ACCESS_KEY");
    String token = env.get("AWS_SESSION_TOKEN");
    if (isBlank(id) || isBlank(secret)) {
      Optional<Profile> p = profile(env);
      id = p.flatMap(x -> x.property("aws_access_key_id")).orElse(null);
      secret = p.flatMap(x -> x.property("aws_secret_access_key")).orElse(null);
      token = p.flatMap(x -> x.property("aws_session_token")).orElse(null);
    }
    if (isBlank(id) || isBlank(secret)) {
      throw new IllegalArgumentException(
          "no S3 credentials: set AWS_ACCESS_KEY_ID and"
              + " AWS_SECRET_ACCESS_KEY, or put aws_access_key_id and aws_secret_access_key in profile '"
              + profileName(env)
              + "' of ~/.aws/credentials");
    }
    if (!isBlank(token)) {
      return AwsSessionCredentialsIdentity.create(id.strip(), secret.strip(), token.strip());
    }
    return AwsCredentialsIdentity.create(id.strip(), secret.strip());
  }

  /** The region: {@code AWS_REGION}, {@code AWS_DEFAULT_REGION}, the profile's, else us-east-1. */
  static String region(Map<String, String> env) {
    for (String k : new String[] {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
      if (!isBlank(env.get(k))) {
        return env.get(k).strip();
      }
    }
    return profile(env).flatMap(p -> p.property("region")).orElse("us-east-1");
  }

  private static String profileName(Map<String, String> env) {
    String p = env.get("AWS_PROFILE");
    return isBlank(p) ? "default" : p.strip();
  }

  private static Optional<Profile> profile(Map<String, String> env) {
    try {
      return ProfileFile.defaultProfileFile().profile(profileName(env));
    } catch (RuntimeException e) {
      // an unreadable or malformed file must not hide the real question (which credentials)
      return Optional.empty();
    }
  }

  private static boolean isBlank(String s) {
    return s == null || s.isBlank();
  }
}
