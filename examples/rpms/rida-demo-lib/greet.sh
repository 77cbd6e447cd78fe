# rida-demo greeting library; source it, then call rida_demo_greet NAME.
rida_demo_greet() {
	printf 'Hello, %s, from rida-demo!\n' "${1:-world}"
}
