package dev.thaw.store;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A Proxmox Backup Server datastore named as the PBS client names it: {@code
 * [[AUTHID@]HOST[:PORT]:]DATASTORE}, for example {@code backup@pbs!thaw@pbs.example:8007:tank}
 * (host {@code localhost}, port 8007 and auth id {@code root@pam} when left out; an IPv6 address in
 * brackets). Immutable.
 *
 * @param authId {@code user@realm} or an API token {@code user@realm!name}
 */
record PbsRepository(String authId, String host, int port, String datastore) {
  static final int DEFAULT_PORT = 8007;

  /** A PBS id (datastore, realm, token name, namespace part): PBS's SAFE_ID. */
  static final String SAFE_ID = "[A-Za-z0-9_][A-Za-z0-9._\\-]*";

  private static final String USER_ID = "[^\\s:/\\p{Cntrl}]+@" + SAFE_ID;
  private static final String AUTH_ID = USER_ID + "(?:!" + SAFE_ID + ")?";
  private static final String DNS_LABEL = "[a-zA-Z0-9](?:[a-zA-Z0-9\\-]*[a-zA-Z0-9])?";
  private static final String HOST =
      "(?:" + DNS_LABEL + "\\.)*" + DNS_LABEL + "|\\[[0-9a-fA-F:.]+\\]";
  private static final Pattern REPOSITORY =
      Pattern.compile(
          "(?:(?:(" + AUTH_ID + ")@)?(" + HOST + "):)?(?:([0-9]{1,5}):)?(" + SAFE_ID + ")");
  private static final Pattern NAMESPACE = Pattern.compile("(?:" + SAFE_ID + "/){0,6}" + SAFE_ID);
  private static final Pattern AUTH_ID_PATTERN = Pattern.compile(AUTH_ID);

  /** Parses a repository in the PBS client's syntax; the message says what is wrong. */
  static PbsRepository parse(String spec) {
    Matcher m = REPOSITORY.matcher(spec);
    if (!m.matches()) {
      throw new IllegalArgumentException(
          "not a PBS repository ([[AUTHID@]HOST[:PORT]:]DATASTORE): " + spec);
    }
    int port = DEFAULT_PORT;
    if (m.group(3) != null) {
      port = Integer.parseInt(m.group(3));
      if (port < 1 || port > 65535) {
        throw new IllegalArgumentException("PBS port out of range: " + spec);
      }
    }
    String datastore = m.group(4);
    if (datastore.length() < 3 || datastore.length() > 32) {
      throw new IllegalArgumentException(
          "a PBS datastore name has 3 to 32 characters: " + datastore);
    }
    return new PbsRepository(
        m.group(1) != null ? m.group(1) : "root@pam",
        m.group(2) != null ? m.group(2) : "localhost",
        port,
        datastore);
  }

  /** Whether the auth id names an API token ({@code user@realm!name}). */
  boolean isToken() {
    return AUTH_ID_PATTERN.matcher(authId).matches()
        && authId.indexOf('!') > authId.lastIndexOf('@');
  }

  /** The host as a socket address takes it (an IPv6 address without brackets). */
  String socketHost() {
    return host.startsWith("[") ? host.substring(1, host.length() - 1) : host;
  }

  /**
   * Splits a namespace as PBS writes it ({@code a/b}, at most 7 levels deep; empty for the root)
   * into its parts.
   */
  static List<String> parseNamespace(String ns) {
    if (ns == null || ns.isEmpty()) {
      return List.of();
    }
    if (!NAMESPACE.matcher(ns).matches() || ns.length() > 256) {
      throw new IllegalArgumentException(
          "not a PBS namespace (NAME[/NAME]..., at most 7 levels): " + ns);
    }
    return List.of(ns.split("/"));
  }

  /** The namespace parts joined as PBS writes them. */
  static String namespace(List<String> parts) {
    return String.join("/", parts);
  }

  /** Base namespace + a snapshot's own namespace parts, checked against PBS's depth limit. */
  static List<String> join(List<String> base, List<String> sub) {
    List<String> all = new ArrayList<>(base);
    all.addAll(sub);
    if (all.size() > 7) {
      throw new IllegalArgumentException("PBS namespaces nest at most 7 levels: " + namespace(all));
    }
    return all;
  }

  /** The repository as the PBS client prints it, with the defaults filled in. */
  @Override
  public String toString() {
    return authId + "@" + host + ":" + port + ":" + datastore;
  }
}
