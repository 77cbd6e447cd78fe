package modulemd

import (
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"strings"
)

// maxKojiTagLength is MBS's generate_koji_tag limit for tag names, counting
// the "-build" suffix of the build tag.
const maxKojiTagLength = 256

// NSVC returns name:stream:version:context. As libmodulemd does, the context
// part is left out when context is empty.
func NSVC(name, stream string, version uint64, context string) string {
	s := name + ":" + stream + ":" + strconv.FormatUint(version, 10)
	if context != "" {
		s += ":" + context
	}
	return s
}

// ModularityLabel returns the %modularitylabel RPM macro value,
// name:stream:version:context (always four parts).
func ModularityLabel(name, stream string, version uint64, context string) string {
	return name + ":" + stream + ":" + strconv.FormatUint(version, 10) + ":" + context
}

// nsvcHash returns the SHA-1 hex digest of "name.stream.version.context".
func nsvcHash(name, stream string, version uint64, context string) string {
	sum := sha1.Sum([]byte(name + "." + stream + "." + strconv.FormatUint(version, 10) + "." + context))
	return hex.EncodeToString(sum[:])
}

// DistTag returns the RPM %dist value of a module build, as MBS's
// get_rpm_release: ".module+<marking>+<id>+<hash>", where hash is the first 8
// hex digits of sha1("name.stream.version.context"). marking is the base
// module's disttag marking or stream (e.g. "el8.2.0"); when it is empty
// (no base module) the "<marking>+" part is left out. id is the build's
// numeric id (MBS: the lowest id among the stream-expansion siblings).
//
// Example: DistTag("testmodule", "master", 20180205135154, "9c690d0e",
// "f28", 2) is ".module+f28+2+b18c19fc".
func DistTag(name, stream string, version uint64, context, marking string, id int64) string {
	var b strings.Builder
	b.WriteString(".module+")
	if marking != "" {
		b.WriteString(marking)
		b.WriteString("+")
	}
	b.WriteString(strconv.FormatInt(id, 10))
	b.WriteString("+")
	b.WriteString(nsvcHash(name, stream, version, context)[:8])
	return b.String()
}

// KojiTag returns the Koji destination tag of a module build, as MBS's
// generate_koji_tag: "module-<name>-<stream>-<version>-<context>", or, when
// that plus the "-build" suffix of the build tag would exceed 256
// characters, "module-" followed by the first 16 hex digits of
// sha1("name.stream.version.context"). The build tag is KojiTag + "-build".
func KojiTag(name, stream string, version uint64, context string) string {
	return kojiTag("module-", "", maxKojiTagLength, name, stream, version, context)
}

// ScratchKojiTag returns the Koji destination tag of scratch module build
// id, as MBS's generate_koji_tag with scratch set:
// "scrmod-<name>-<stream>-<version>-<context>+<id>", or "scrmod-", 16 hex
// digits of the NSVC's SHA-1 and "+<id>" when that plus "-build" would
// exceed maxLength (256 for tags, 56 for targets).
func ScratchKojiTag(name, stream string, version uint64, context string, id uint64, maxLength int) string {
	return kojiTag("scrmod-", "+"+strconv.FormatUint(id, 10), maxLength, name, stream, version, context)
}

// kojiTag is MBS's generate_koji_tag: prefix, the NSVC joined by "-" and
// suffix, or the hashed form when too long.
func kojiTag(prefix, suffix string, maxLength int, name, stream string, version uint64, context string) string {
	tag := prefix + name + "-" + stream + "-" + strconv.FormatUint(version, 10) + "-" + context + suffix
	if len(tag)+len("-build") > maxLength {
		return prefix + nsvcHash(name, stream, version, context)[:16] + suffix
	}
	return tag
}

// MaxKojiTagLength is the longest Koji tag name MBS makes (its default
// max_length); targets are limited to 56.
const MaxKojiTagLength = maxKojiTagLength
