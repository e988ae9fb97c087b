"""SCons build script of tinyc's offline PlatformIO platform (installed as builder/main.py).

Not imported by tinyc: tinyc.platformio copies this file into the platform folder, and
PlatformIO runs it under SCons for `pio run -e offline-*`. It builds with the system
arm-none-eabi toolchain from PATH (no registry package), adds only -mcpu/-mthumb (everything
else comes from the project's build_flags and platformio_link.py, the same as with the official
ststm32 platform), makes firmware.elf and firmware.bin, prints the size, and uploads with OpenOCD
when the board has an OpenOCD target.
"""

from os.path import join

from SCons.Script import AlwaysBuild, Builder, Default, DefaultEnvironment

env = DefaultEnvironment()
board = env.BoardConfig()
cpu = board.get("build.cpu")

env.Replace(
    AR="arm-none-eabi-ar",
    AS="arm-none-eabi-as",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-ranlib",
    SIZETOOL="arm-none-eabi-size",
    ARFLAGS=["rc"],
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
    SIZEPROGREGEXP=r"^(?:\.isr_vector|\.text|\.rodata|\.ARM\.exidx|\.init_array|\.data)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
)
env.Append(
    ASFLAGS=[f"-mcpu={cpu}", "-mthumb"],
    CCFLAGS=[f"-mcpu={cpu}", "-mthumb"],
    LINKFLAGS=[f"-mcpu={cpu}", "-mthumb"],
    BUILDERS={
        "ElfToBin": Builder(
            action=env.VerboseAction("$OBJCOPY -O binary $SOURCES $TARGET", "Building $TARGET"),
            suffix=".bin",
        )
    },
)

target_elf = env.BuildProgram()
target_bin = env.ElfToBin(join("$BUILD_DIR", "${PROGNAME}"), target_elf)
env.Alias("buildprog", target_bin, target_bin)
AlwaysBuild(env.Alias("size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Size $SOURCE")))

openocd_target = board.get("debug.openocd_target", "")
if openocd_target:
    program = '-c "program {$SOURCE} verify reset exit"'
    interface = "-f interface/stlink.cfg"
    env.Replace(UPLOADCMD=f"openocd {interface} -f target/{openocd_target}.cfg {program}")
else:
    env.Replace(UPLOADCMD="echo 'this board is emulated: nothing to upload' && false")
AlwaysBuild(env.Alias("upload", target_elf, env.VerboseAction("$UPLOADCMD", "Uploading $SOURCE")))

Default([target_bin, "size"])
