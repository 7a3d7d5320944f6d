package dev.thaw.cli;

import dev.thaw.fuse.Mounter;
import java.io.PrintWriter;
import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * thaw's entry point: parses the command line and maps failures to messages and exit codes.
 *
 * <p>Only the command named is built: picocli builds a command's model by reflection, and all of
 * them at once (with what their fields initialise) cost a large part of a command's start. The full
 * set is built only for the top-level help, and for a name that is no command (so that picocli
 * suggests the nearest); {@code --version} builds none.
 */
@Command(
    name = "thaw",
    mixinStandardHelpOptions = true,
    version = "thaw 0.1.0",
    description =
        "Back up, verify and restore chunked disk images; chunks are fetched on demand, "
            + "in parallel, and verified before use.")
public final class Main implements Runnable {
  /** Exit code for a failed run; usage errors exit 2. */
  static final int FAILED = 1;

  /** The commands, in the order help lists them. */
  static final List<String> COMMANDS =
      List.of(
          "backup",
          "ls",
          "restore",
          "verify",
          "partitions",
          "files",
          "mount",
          "serve",
          "unmount",
          "status",
          "key",
          "help");

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(
        spec.commandLine(), "name a command (see thaw --help)");
  }

  public static void main(String[] args) {
    System.exit(commandLine(args).execute(args));
  }

  /** A new instance of the command {@code name}, or null when there is none of that name. */
  private static Object command(String name, java.util.Map<String, String> env) {
    return switch (name) {
      case "backup" -> new BackupCommand(env);
      case "ls" -> new LsCommand();
      case "restore" -> new RestoreCommand();
      case "verify" -> new VerifyCommand();
      case "partitions" -> new PartitionsCommand();
      case "files" -> new FilesCommand();
      case "mount" -> new MountCommand();
      case "serve" -> new ServeCommand();
      case "unmount" -> new UnmountCommand();
      case "status" -> new StatusCommand();
      case "key" -> new KeyCommand();
      case "help" -> new CommandLine.HelpCommand();
      default -> null;
    };
  }

  /**
   * Makes what picocli instantiates, giving the option groups that read credentials the environment
   * with the launcher's secrets ({@link Secrets#environment()}).
   */
  private static final class Factory implements CommandLine.IFactory {
    private final java.util.Map<String, String> env;

    Factory(java.util.Map<String, String> env) {
      this.env = env;
    }

    @Override
    public <K> K create(Class<K> cls) throws Exception {
      K o = CommandLine.defaultFactory().create(cls);
      if (o instanceof StoreOptions s) {
        s.env = env;
      } else if (o instanceof KeyOptions k) {
        k.env = env;
      } else if (o instanceof KeyCommand.Create c) {
        c.env = env;
      }
      return o;
    }
  }

  /** The command line for {@code args}: thaw with the command they name, or with all of them. */
  static CommandLine commandLine(String[] args) {
    return commandLine(args, Secrets.environment());
  }

  /** As {@link #commandLine(String[])}, credentials read from {@code env}. */
  static CommandLine commandLine(String[] args, java.util.Map<String, String> env) {
    CommandLine cl = new CommandLine(new Main(), new Factory(env));
    String name = null;
    for (String a : args) {
      if (!a.startsWith("-")) {
        name = a;
        break;
      }
    }
    // a mount binds jnr-fuse on a thread of its own from here on, beside the parsing below
    Object named =
        name == null
            ? null
            : name.equals("mount") ? new MountCommand(Mounter.bind()) : command(name, env);
    boolean versionOnly =
        name == null
            && List.of(args).stream().anyMatch(a -> a.equals("-V") || a.equals("--version"));
    if (versionOnly) {
      // nothing to build
    } else if (named == null || named instanceof CommandLine.HelpCommand) {
      for (String c : COMMANDS) {
        cl.addSubcommand(c, command(c, env)); // the top-level help lists them all
      }
    } else {
      cl.addSubcommand(name, named);
    }
    cl.setExecutionExceptionHandler(
        (ex, cmd, parsed) -> {
          PrintWriter err = cl.getErr();
          err.println("thaw: error: " + Errors.describe(ex));
          if (System.getenv("THAW_DEBUG") != null) {
            ex.printStackTrace(err);
          }
          err.flush();
          return FAILED;
        });
    return cl;
  }
}
