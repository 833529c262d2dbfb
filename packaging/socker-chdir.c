/* socker-chdir [--size ROWS COLUMNS] DIR COMMAND [ARG...]: the first program of every
 * socker container.
 *
 * Runs as the caller (the engine has already switched to their uid), gives the terminal on
 * its standard input ROWS and COLUMNS if asked (so that COMMAND's first instruction sees the
 * caller's terminal: the engine's own resize can only follow the start), changes to DIR and
 * executes COMMAND. DIR is absolute, so it never reads as the option. The container itself starts in "/": asked for a working directory,
 * the engine's runtime would create it as root when missing, following symbolic links
 * inside the container, into whatever the caller's bind mounts reach.
 *
 * Exit status when COMMAND does not run: 125 if DIR cannot be entered, 127 if COMMAND is
 * not found or there is none (the image names none and neither did the caller), 126 if it
 * cannot be executed (as socker and docker run report them).
 * Built static by packaging/build: it must run in any image, whatever its C library.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "--size") == 0) {
        struct winsize size = {.ws_row = (unsigned short)strtoul(argv[2], NULL, 10),
                               .ws_col = (unsigned short)strtoul(argv[3], NULL, 10)};
        ioctl(STDIN_FILENO, TIOCSWINSZ, &size); /* no terminal, no size: nothing to do */
        argv += 3;
        argc -= 3;
    }
    if (argc < 3) {
        fprintf(stderr, "socker: the image names no command; give one after the image\n");
        return 127;
    }
    if (chdir(argv[1]) != 0) {
        fprintf(stderr, "socker: cannot enter the working directory %s: %s\n", argv[1], strerror(errno));
        return 125;
    }
    execvp(argv[2], argv + 2);
    int error = errno;
    fprintf(stderr, "socker: cannot run %s: %s\n", argv[2], strerror(error));
    return error == ENOENT || error == ENOTDIR ? 127 : 126;
}
