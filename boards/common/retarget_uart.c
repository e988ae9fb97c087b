/*
 * newlib system calls for boards whose console is a UART (console: uart, linked with
 * --specs=nano.specs). stdin/stdout/stderr are the UART through board_uart_putc() and
 * board_uart_getc(); there is no file system, so open() fails with ENOSYS; the heap runs from
 * the end of .bss to the bottom of the stack region; exit() ends in board_halt().
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "board_platform.h"
#include "tinyc_board.h"

#undef errno
extern int errno;

extern char __heap_start__;
extern char __heap_end__;

int _write(int fd, const char *buf, int len);
int _read(int fd, char *buf, int len);
int _open(const char *path, int flags, int mode);
int _close(int fd);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
int _lseek(int fd, int offset, int whence);
void *_sbrk(ptrdiff_t increment);
void _exit(int code) __attribute__((noreturn));
int _kill(int pid, int sig);
int _getpid(void);

static int is_console(int fd)
{
    return fd >= 0 && fd <= 2;
}

int _write(int fd, const char *buf, int len)
{
    if (!is_console(fd)) {
        errno = EBADF;
        return -1;
    }
    for (int i = 0; i < len; ++i) {
        board_uart_putc(buf[i]);
    }
    return len;
}

/* Returns at least one byte, stopping after a newline (line-buffered like a terminal). */
int _read(int fd, char *buf, int len)
{
    if (!is_console(fd)) {
        errno = EBADF;
        return -1;
    }
    int count = 0;
    while (count < len) {
        char c = (char)board_uart_getc();
        buf[count++] = c;
        if (c == '\n') {
            break;
        }
    }
    return count;
}

int _open(const char *path, int flags, int mode)
{
    (void)path;
    (void)flags;
    (void)mode;
    errno = ENOSYS;
    return -1;
}

int _close(int fd)
{
    (void)fd;
    return 0;
}

int _fstat(int fd, struct stat *st)
{
    (void)fd;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int fd)
{
    return is_console(fd);
}

int _lseek(int fd, int offset, int whence)
{
    (void)fd;
    (void)offset;
    (void)whence;
    errno = ESPIPE;
    return -1;
}

void *_sbrk(ptrdiff_t increment)
{
    static char *heap_top = &__heap_start__;
    if (increment > &__heap_end__ - heap_top || increment < &__heap_start__ - heap_top) {
        errno = ENOMEM;
        return (void *)-1;
    }
    char *previous = heap_top;
    heap_top += increment;
    return previous;
}

void _exit(int code)
{
    board_halt(code);
}

int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

int _getpid(void)
{
    return 1;
}

/* The raw console of every UART board (fault messages, clock set-up failures): byte by byte
 * through the platform's board_uart_putc(). */
void board_raw_write(const char *text, size_t len)
{
    for (size_t i = 0; i < len; ++i) {
        board_uart_putc(text[i]);
    }
}
