package dev.thaw.cli;

import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** thaw's entry point: parses the command line and maps failures to messages and exit codes. */
@Command(name = "thaw", mixinStandardHelpOptions = true, version = "thaw 0.1.0",
    description = "Back up, verify and restore chunked disk images; chunks are fetched on demand, "
        + "in parallel, and verified before use.",
    subcommands = {BackupCommand.class, LsCommand.class, RestoreCommand.class, VerifyCommand.class,
        PartitionsCommand.class, FilesCommand.class, MountCommand.class, ServeCommand.class,
        UnmountCommand.class, StatusCommand.class, KeyCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
  /** Exit code for a failed run; usage errors exit 2. */
  static final int FAILED = 1;

  @CommandLine.Spec
  CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(), "name a command (see thaw --help)");
  }

  public static void main(String[] args) {
    System.exit(commandLine().execute(args));
  }

  static CommandLine commandLine() {
    CommandLine cl = new CommandLine(new Main());
    cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
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
